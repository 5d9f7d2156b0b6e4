"""Members, points and the coupon wallet over HTTP; their bodies in `schemas`."""
