"""The CSV File connector: users and groups as the rows of CSV files (source and target).

:mod:`.types` declares the connector type and its properties; :mod:`.connector` holds
``CSVConnector``. It is built on :mod:`.columns` (column names ↔ entity paths, rows ↔
entities), :mod:`.files` (reading a file, replacing it atomically) and :mod:`.table` (one
file's changes waiting, and their flush).
"""
