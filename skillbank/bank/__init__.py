"""The skill bank installed with the package: ``skills/``, ``schemas/`` and ``references/``.

In the repository these three are links to the top-level folders of the same names (the bank's
home, where people and agents read it); a wheel carries them as package data, so an installed
``skillbank`` finds its bank here through the import system, wherever it was installed.
:func:`skillbank.runtime.skills.bank_root` is the one reader; ``$SKILLBANK_ROOT`` replaces it.
"""
