"""Running the brand: API keys and their scopes, and the demo brand. Accounts,
roles and staff (the cashier page's and console's sign-in) go here."""
