"""Declarative files (certificate profiles, administrative units, later signing rules) and the
small code that loads, validates and evaluates them."""
