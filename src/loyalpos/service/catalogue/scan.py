"""`scan`: what the cashier page calls with whatever the scanner or the cashier
typed, Enter included.

The string is classified by domain/scanning.py with the brand's scale-label
layouts. A member code, phone or card number and a payment code come back
classified for the page to act on (identify the member, take the payment); this
module never looks a member up. An item code (a GTIN, a scale label's item code,
a plain code) is looked up among the brand's active products, by barcode first,
then by sku; a scale label's item code, when neither matches, also as a sku
without its leading zeros (a PLU "00042" for sku "42").

The line's price (`price_fen`):
- a scale label carrying a price: that price, whether or not the product is
  known (the customer holds a label with it; an unknown item is rung up at it);
- a label carrying only a weight: weight × the product's price per kilogram,
  rounded to the fen half up (`domain.scanning.price_from_weight`);
- any other code of a product sold by the piece: the product's price;
- a product sold by weight scanned without a weight, or an unknown code: none
  (the page asks for a weight or a price).
"""

from __future__ import annotations

from dataclasses import dataclass

from loyalpos.domain.scanning import ScanKind, Scanned, classify, price_from_weight
from loyalpos.service.base.context import Context
from loyalpos.service.catalogue.products import Product, Unit, find_code, layouts_in


@dataclass(frozen=True, slots=True)
class ScanResult:
    scanned: Scanned
    product: Product | None = None
    price_fen: int | None = None
    weight_g: int | None = None

    @property
    def kind(self) -> ScanKind:
        return self.scanned.kind


def scan(ctx: Context, brand_id: int, text: str) -> ScanResult:
    """What `text` is, and for an item the brand's product and the line's price
    (module docstring)."""
    with ctx.transaction(read_only=True) as conn:
        scanned = classify(text, layouts_in(conn, brand_id))
        if not scanned.is_item or scanned.code is None:
            return ScanResult(scanned)
        product = find_code(conn, brand_id, scanned.code, active_only=True)
        if product is None and scanned.kind is ScanKind.SCALE_LABEL:
            short = scanned.code.lstrip("0")
            if short and short != scanned.code:
                product = find_code(conn, brand_id, short, active_only=True)
    return ScanResult(scanned, product, _price(scanned, product), scanned.weight_g)


def _price(scanned: Scanned, product: Product | None) -> int | None:
    if scanned.price_fen is not None:
        return scanned.price_fen
    if product is None:
        return None
    if scanned.weight_g is not None:
        return price_from_weight(scanned.weight_g, product.price_fen)
    if product.unit is Unit.KG:
        return None
    return product.price_fen
