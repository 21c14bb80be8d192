"""The run's report: report.html (self-contained) and report.md, with figures."""

from mofn2logic.report.html import ReportTexts, write_report

__all__ = ["write_report", "ReportTexts"]
