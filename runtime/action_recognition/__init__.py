"""The action-recognition model: data, networks, Lightning module, entry points. Imports torch lazily."""
