import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { BackendError } from '../../../shared/errors.js';
import { initTrainingBackend, parseTrainingBackend } from '../../../edge-client/training/trainingBackend.js';

function nativeTfjsInstalled(pkg: string): boolean {
  try {
    import.meta.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

describe('edge-client/training/trainingBackend', () => {
  after(async () => {
    await initTrainingBackend('wasm');
  });

  it('the default order reports every backend it skipped, with the reason, and the one that runs', async () => {
    const logged: string[] = [];
    // Reset to exercise the default search (other tests pinned wasm).
    const info = await initTrainingBackend(undefined, { log: (m) => logged.push(m) });
    assert.ok(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(info.name));
    assert.equal(tf.getBackend(), info.tfjsName);
    const skipped = info.attempts.filter((a) => !a.ok);
    for (const a of skipped) assert.ok(a.reason && a.reason.length > 0);
    if (!nativeTfjsInstalled('@tensorflow/tfjs-node')) {
      assert.ok(info.attempts.some((a) => a.backend === 'tensorflow' && !a.ok && /not installed/.test(a.reason!)), JSON.stringify(info.attempts));
    }
  });

  it('an explicitly requested backend that cannot load is an error, never a silent fallback', async function () {
    if (nativeTfjsInstalled('@tensorflow/tfjs-node-gpu')) this.skip(); // a GPU box really has it
    await assert.rejects(initTrainingBackend('tensorflow-gpu'), (e: unknown) => e instanceof BackendError && /tensorflow-gpu" is not available/.test(e.message));
  });

  it('cpu and wasm both train', async () => {
    for (const name of ['cpu', 'wasm'] as const) {
      const info = await initTrainingBackend(name);
      assert.equal(info.name, name);
      assert.equal(tf.getBackend(), name);
    }
  });

  it('rejects unknown backend names', () => {
    assert.throws(() => parseTrainingBackend('webgl'), /unknown training backend "webgl"/);
  });
});
