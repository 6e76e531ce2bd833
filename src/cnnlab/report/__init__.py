"""Figures and reports: matplotlib figures (plots, grids, interpret_plots, filters_plots) and the HTML report.

The report (``cnnlab report``): :func:`cnnlab.report.build.make_report` computes the sections of each run
(``context``, ``sec_*``, ``compare``) as plain data (``document``) and renders one self-contained page
(``html``). Importing this package imports nothing heavy.
"""
