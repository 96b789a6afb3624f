"""Views of result data: rich tables for people, JSON for programs. Only here and lab.cli import rich."""
