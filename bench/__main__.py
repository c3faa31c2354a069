"""Run every benchmark: `.venv/bin/python -m bench` (each also runs alone: `python -m bench.X`)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
    if not module.name.startswith("_"):
        print(f"\n== bench.{module.name} ==", flush=True)
        importlib.import_module(f"bench.{module.name}").main([])
