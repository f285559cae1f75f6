/**
 * fedmed's library API (`import { ... } from 'fedmed'`).
 */
export * from './shared/errors.js';
export { parseModelSpec, resolveLayers, numClassesOf, type ModelSpec, type LayerSpec } from './shared/model/modelSpec.js';
export { layoutOf, paramView, checkParams, type ParameterLayout, type LayoutEntry } from './shared/model/parameterLayout.js';
export { initParams } from './shared/model/initParams.js';
export { specHash, paramsSha256, modelVersionId } from './shared/model/modelHash.js';
export { encodeParamsFile, decodeParamsFile, saveParamsFile, loadParamsFile } from './shared/model/paramsFile.js';
export { classificationMetrics, rocAuc, type ClassificationMetrics } from './shared/metrics/classificationMetrics.js';
export { SeededRng } from './shared/random/seededRng.js';
export { ZOO, zooModel, type ZooOptions } from './models/zoo.js';
export { TfjsModel } from './models/tfjsModel.js';
export { buildOnnxModel, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, ONNX_OPSET } from './models/onnxModel.js';
export { initTrainingBackend, TRAINING_BACKENDS, type TrainingBackendName, type TrainingBackendInfo } from './edge-client/training/trainingBackend.js';
export { localFit, trainModel, evaluateModel, predictProbabilities, type LocalFitOptions, type LocalFitResult } from './edge-client/training/localTrainer.js';
export { OnnxInferenceSession, type InferenceSessionOptions } from './edge-client/inference/onnxInferenceSession.js';
export { DEFAULT_PROVIDERS, parseProviderList, type ProviderName, type TensorRtOptions } from './edge-client/inference/executionProviders.js';
export { loadDataset, type LoadOptions } from './edge-client/data/loadDataset.js';
export { loadMedmnistNpz } from './edge-client/data/medmnistLoader.js';
export { loadCsv, parseCsv, standardize, type CsvOptions } from './edge-client/data/csvLoader.js';
export { loadPngFolder } from './edge-client/data/pngFolderLoader.js';
export { syntheticImages, type ScannerProfile } from './edge-client/data/syntheticImages.js';
export { stratifiedSplit, subset, type Dataset, type DatasetSplits } from './edge-client/data/dataset.js';
export { createStrategy, STRATEGY_NAMES, ROBUST_STRATEGIES, type StrategyName, type StrategyOptions } from './shared/aggregation/createStrategy.js';
export { AggregationError, type AggregationRule, type FitResult } from './shared/aggregation/aggregationRule.js';
export { parseSimulationConfig, type SimulationConfig } from './simulations/simulationConfig.js';
export { runSimulation, type SimulationOptions } from './simulations/simulationRunner.js';
