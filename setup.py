"""Everything is declared in setup.cfg; this file only adds the bundled example to the built package.

The example configuration (examples/loir-et-cher: crieur.yaml, rules, territories, authorities,
templates, demo feeds) is what `crieur demo` runs and what `crieur init` copies. It stays at the top of
the repository, where CMs and the tests read it; a build (wheel, `pip install .`) copies it into the
package as alerts/example, so that an installed Crieur has it too.
"""

import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

EXAMPLE = pathlib.Path(__file__).resolve().parent / "examples" / "loir-et-cher"


class BuildWithExample(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads examples/ in place
            target = pathlib.Path(self.build_lib) / "alerts" / "example"
            shutil.copytree(
                EXAMPLE, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data")
            )


setup(cmdclass={"build_py": BuildWithExample})
