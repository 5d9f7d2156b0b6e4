"""The browser pages (the till's and the console's sign-in, for now).

Server-rendered Jinja2 pages on top of the service layer, mounted by
`api/app.py` beside the JSON API but left out of its OpenAPI document: the
pages are for people, the API for POS systems.
"""
