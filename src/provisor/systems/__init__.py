"""Systems: configured connectors in a role (source, target, proxy), their properties
(credentials encrypted), transformations with their history, and export/import."""
