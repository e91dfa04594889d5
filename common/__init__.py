"""Shared helpers every layer may use; they import no app of this project."""
