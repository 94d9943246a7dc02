"""Package-level promises: light import, version, stubs present, no float copy when binning numpy."""

import subprocess
import sys
import textwrap
from pathlib import Path

import ferrox as fx


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_needs_numpy_only():
    loaded = run(
        """
        import sys, ferrox
        print(sorted(m for m in ("pandas", "polars", "pyarrow", "optuna", "mlflow", "sklearn", "scipy") if m in sys.modules))
        """
    )
    assert loaded == "[]"


def test_integrations_load_on_attribute_access_without_their_libraries():
    loaded = run(
        """
        import sys, ferrox as fx
        names = (fx.optuna.PruningCallback.__name__, fx.mlflow.FLAVOR_NAME)
        print(names, sorted(m for m in ("optuna", "mlflow") if m in sys.modules))
        """
    )
    assert loaded == "('PruningCallback', 'ferrox') []"


def test_version_and_typing_files():
    assert fx.__version__.count(".") == 2
    pkg = Path(fx.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_ferrox.pyi").exists()


def test_binning_numpy_does_not_copy_the_floats():
    # 400k x 50 float32 = 80 MB of input; the u8 bins are 20 MB. A float copy would add 80+ MB.
    extra = run(
        """
        import numpy as np, ferrox as fx
        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) * 1024
        x = np.random.default_rng(0).standard_normal(size=(400_000, 50), dtype=np.float32)
        before = hwm()
        ds = fx.Dataset(x, num_threads=2)
        print(hwm() - before, x.nbytes)
        """
    )
    added, input_bytes = map(int, extra.split())
    assert added <= 0.5 * input_bytes, f"binning added {added / 1e6:.1f} MB for {input_bytes / 1e6:.1f} MB of input"
