"""Package discovery for the remapped layout.

generator/ and runtime/ sit at the top of the repository but import as
skillbank.generator and skillbank.runtime; setuptools' automatic discovery
cannot rename packages, so the list is computed here.
"""
from setuptools import find_packages, setup

ROOTS = {"skillbank": "skillbank", "skillbank.generator": "generator", "skillbank.runtime": "runtime"}

packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    packages=sorted(set(packages)),
    package_data={
        "skillbank.generator": ["templates/*.j2"],
        "skillbank.runtime.sdk.platforms": ["templates/*.j2"],
    },
)
