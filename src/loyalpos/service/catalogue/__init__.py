"""The brand's product catalogue (商品): products by sku and barcode, their CSV
import, the brand's scale-label layouts, and `scan`, what the cashier page calls
with whatever was scanned or typed. Beside loyalty (neither knows the other), on
top of base only; till and the pages use it to ring items up."""
