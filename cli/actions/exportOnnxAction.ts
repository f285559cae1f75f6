/** The work behind `fedmed export-onnx` (loaded only when that command runs: it pulls in the ONNX protobuf schema). */
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { buildOnnxModel } from '../../models/onnxModel.js';
import { modelVersionId } from '../../shared/model/modelHash.js';
import { resolveModel } from '../modelResolver.js';
import type { ExportFlags } from '../exportOnnxCommand.js';

export function runExportOnnx(flags: ExportFlags): void {
  const { spec, params } = resolveModel(flags);
  const bytes = buildOnnxModel(spec, params);
  writeFileAtomic(flags.out, bytes, 0o644); // asked for by name: readable like any output
  const info = { model: spec.name, out: flags.out, bytes: bytes.length, parameters: params.length, versionId: modelVersionId(spec, params) };
  if (flags.json) process.stdout.write(`${JSON.stringify(info)}\n`);
  else console.log(`wrote ${flags.out}: model ${spec.name}, ${params.length} parameters, ${bytes.length} bytes, version ${info.versionId.slice(0, 16)}`);
}
