"""Build hook: compile the fast path's entry reader (aggregator/parse/_walk.pyx).

It is optional. Where Cython, lxml's headers or a C compiler are missing, the build goes
on without it and ``aggregator.parse.fast`` reads every entry in Python: same results,
about half the speed on dense feeds. The editable install (the README's commands) builds
it in place; after editing the .pyx, run ``pip install -e .`` again.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "aggregator/parse/_walk.pyx"


class NativeWalkerHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        try:
            built = self._compile()
        except Exception as exc:  # any failure: build without it, say so
            self.app.display_warning(
                f"aggregator: native entry reader not built ({type(exc).__name__}: {exc}); "
                "the pure-Python reader will be used")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        # The .so is git-ignored, which hatch would otherwise leave out of a wheel.
        build_data["artifacts"].append(built.relative_to(self.root).as_posix())
        self.app.display_info(f"aggregator: built {built.name}")

    def _compile(self) -> Path:
        import lxml
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension

        root = Path(self.root)
        # Recorded in the module, so that fast.py can tell a build older than its source.
        digest = hashlib.sha256((root / SOURCE).read_bytes()).hexdigest()[:16]
        ext = Extension("aggregator.parse._walk", [SOURCE], include_dirs=lxml.get_include(),
                        define_macros=[("AGGREGATOR_WALK_SOURCE", f'"{digest}"')])
        with tempfile.TemporaryDirectory() as tmp:
            dist = Distribution({"ext_modules": cythonize([ext], language_level=3, quiet=True),
                                 "script_name": "hatch_build.py"})
            cmd: Any = dist.get_command_obj("build_ext")
            cmd.inplace = True
            cmd.build_temp = tmp
            cmd.ensure_finalized()
            cmd.run()
            built = Path(cmd.get_ext_fullpath(ext.name))
        return built if built.is_absolute() else root / built
