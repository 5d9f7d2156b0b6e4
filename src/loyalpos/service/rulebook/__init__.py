"""The rules HQ writes: rule-set versions, publishing with an effective time,
and the rules in force at a moment (cached for the till). Drafts, "try a cart"
and version differences of the console go here."""
