"""Topology file -> validated model."""
