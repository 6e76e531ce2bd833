"""Figures and reports: matplotlib figures (plots.py) and the HTML report."""
