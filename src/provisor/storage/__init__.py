"""The database: engines and scoped transactions, tables, migrations, the filter compiler."""
