"""Reports for the complaint centres (PSC, PMDU): figures aggregated in SQL from the read model.

Plain code, no web framework: :mod:`reports.figures` and :mod:`reports.spso` compute the tables,
:mod:`reports.dimensions` says what they can be broken down by, :mod:`reports.charts` and
:mod:`reports.thaimap` draw them as SVG, :mod:`reports.export` writes them as CSV or Excel.
"""
