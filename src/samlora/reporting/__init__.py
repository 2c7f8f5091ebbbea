"""Reporting: tables and figures for the papermill notebooks, and notebook rendering."""
