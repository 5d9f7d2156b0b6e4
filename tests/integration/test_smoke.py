from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members, points


def test_register_earn_spend_balance(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "b1", "Brand One")
    m = members.register(ctx, brand.id, phone="13800138000", name="张三")
    points.earn(ctx, brand.id, m.id, 100, points.Source("order", "A1"))
    points.spend(ctx, brand.id, m.id, 30, points.Source("order", "A2"))
    assert points.balance(ctx, brand.id, m.id).total == 70
