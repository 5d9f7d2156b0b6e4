"""The member's account with the brand: members and their identities, the
points ledger (earn, spend, reverse, adjust, expiry lots), coupon wallets, the
member import and the expiry job. Stored value, the points mall, lotteries and
tasks go here: they are accounts and ledgers of a member."""
