"""Screening and routing: completeness, suggested category and agencies, duplicates, the auto-screen policy.

Everything here is pure or reads the read model; nothing downloads anything, and complaint text is never
logged (PDPA). ``screening.service.screen`` is the one entry point the CLI and the API use.
"""
