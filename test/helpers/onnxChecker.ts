/**
 * Runs the official ONNX checker (Python `onnx` package, e.g. Debian's python3-onnx) on a file.
 * Returns null when no Python with `onnx` is found (its users skip, printing why, unless CI is
 * set); .ci/run installs it and sets CI, so CI always checks.
 */
import { spawnSync } from 'node:child_process';

const CANDIDATES = [process.env.FEDMED_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);

export function findPythonWithOnnx(): string | null {
  for (const py of CANDIDATES) {
    const r = spawnSync(py, ['-c', 'import onnx'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

export function runOnnxChecker(python: string, file: string): { ok: boolean; output: string } {
  const script = 'import onnx,sys\nm=onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\nprint("ok", onnx.__version__)';
  const r = spawnSync(python, ['-c', script, file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}
