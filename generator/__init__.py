"""Generation: dataclasses -> JSON Schema / manifest / templates, and the Jinja runner generator."""
