/**
 * Small helpers for building ONNX protobuf graphs with onnx-proto: attributes, value infos,
 * float initializers and model encoding. Shared by the model exporter and by the
 * onnxruntime-backed training kernels.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
export type INodeProto = onnxProto.onnx.INodeProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;
export type IAttributeProto = onnxProto.onnx.IAttributeProto;
export type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
const FLOAT = 1;

export function intsAttr(name: string, ints: number[]): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}
export function intAttr(name: string, i: number): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}
export function floatAttr(name: string, f: number): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f };
}

/** A float32 tensor value info; string dims are symbolic (e.g. "batch"). */
export function floatValueInfo(name: string, dims: (number | string)[]): IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/** A float32 initializer; copies the values so the proto owns its bytes. */
export function floatInitializer(name: string, dims: number[], values: Float32Array): ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) };
}

export function node(opType: string, inputs: string[], outputs: string[], attribute: IAttributeProto[] = [], name?: string): INodeProto {
  return { opType, input: inputs, output: outputs, attribute, name: name ?? outputs[0] };
}

export interface GraphParts {
  name: string;
  nodes: INodeProto[];
  inputs: IValueInfoProto[];
  outputs: IValueInfoProto[];
  initializers?: ITensorProto[];
  docString?: string;
  producerVersion?: string;
}

export function encodeOnnxModel(g: GraphParts): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    producerName: 'fedmed',
    producerVersion: g.producerVersion ?? '0.1.0',
    domain: 'org.fedmed',
    modelVersion: 1,
    docString: g.docString ?? '',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: { name: g.name, node: g.nodes, initializer: g.initializers ?? [], input: g.inputs, output: g.outputs },
  });
  return onnx.ModelProto.encode(model).finish();
}

export function decodeOnnxModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
