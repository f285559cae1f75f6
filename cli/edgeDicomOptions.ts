/** `fedmed edge start`'s DICOM options: the case store's sources (C-STORE SCP, PACS pull), what is kept and for how long. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../shared/errors.js';
import { parseInputSpec } from '../shared/model/inputSpec.js';
import type { CasesOptions } from '../edge-client/edgeNode.js';
import { floatOption, intOption } from './parseNumber.js';

export interface DicomFlags {
  dicomPort?: number;
  dicomHost: string;
  dicomAet: string;
  dicomAllowedAets?: string;
  pacs?: string;
  pacsQuery?: string;
  pacsInterval: number;
  inferOnArrival?: boolean;
  keepDicom?: boolean;
  casesRetentionDays?: number;
  dicomInputSpec?: string;
  decodeWorkers?: number;
}

export function withDicomOptions(cmd: Command): Command {
  return cmd
    .option('--dicom-port <port>', 'receive DICOM by C-STORE (and answer C-ECHO) on this port: every instance becomes a de-identified case', intOption('--dicom-port', 0))
    .option('--dicom-host <host>', 'address the DICOM listener binds', '127.0.0.1')
    .option('--dicom-aet <aet>', "this node's AE title (the called AE title senders must use)", 'FEDMED')
    .option('--dicom-allowed-aets <list>', 'calling AE titles accepted, comma-separated (default: any)')
    .option('--pacs <url>', 'pull new instances from this DICOMweb PACS (QIDO-RS + WADO-RS), e.g. http://pacs:8042/dicom-web')
    .option('--pacs-query <query>', "QIDO-RS filter of the pull, e.g. 'ModalitiesInStudy=CR'")
    .option('--pacs-interval <seconds>', 'seconds between PACS pulls', floatOption('--pacs-interval', 1), 60)
    .option('--infer-on-arrival', 'infer each new case with the serving model as it arrives (answers kept with the case: GET /v1/cases/:id)')
    .option('--keep-dicom', "keep each instance's original DICOM (with its PHI) in STATE_DIR/cases/originals; by default only the de-identified case is kept")
    .option('--cases-retention-days <days>', 'delete cases received more than this many days ago (checked at start and hourly)', floatOption('--cases-retention-days', 0))
    .option('--dicom-input-spec <file>', 'JSON input spec for DICOM preprocessing until a model with its own serves (default: 28×28 grey, window from the header, MONOCHROME1 inverted)')
    .option('--decode-workers <n>', 'DICOM decoder worker threads (default min(2, cores))', intOption('--decode-workers', 1));
}

/** The case store's options, or null when no DICOM source is configured. */
export function casesOptions(f: DicomFlags, dataIsCases: boolean): CasesOptions | null {
  const source = f.dicomPort !== undefined || f.pacs !== undefined;
  if (!source && !dataIsCases) {
    if (f.inferOnArrival || f.keepDicom || f.dicomInputSpec) throw new UsageError('--infer-on-arrival, --keep-dicom and --dicom-input-spec need a DICOM source (--dicom-port or --pacs) or --data cases');
    return null;
  }
  let query: Record<string, string> = {};
  if (f.pacsQuery) {
    const q = new URLSearchParams(f.pacsQuery);
    query = Object.fromEntries(q.entries());
    if (Object.keys(query).length === 0) throw new UsageError(`--pacs-query "${f.pacsQuery}" has no key=value pair`);
  }
  if (f.pacs !== undefined && !/^https?:\/\//.test(f.pacs)) throw new UsageError(`--pacs must be an http(s) URL of a DICOMweb service, got "${f.pacs}"`);
  let inputSpec;
  if (f.dicomInputSpec) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(f.dicomInputSpec, 'utf8'));
    } catch (err) {
      throw new UsageError(`--dicom-input-spec ${f.dicomInputSpec}: ${(err as Error).message}`);
    }
    inputSpec = parseInputSpec(json, f.dicomInputSpec);
  }
  const aets = f.dicomAllowedAets?.split(',').map((a) => a.trim()).filter(Boolean) ?? null;
  return {
    ...(f.dicomPort !== undefined ? { scp: { host: f.dicomHost, port: f.dicomPort, aet: f.dicomAet, allowedAets: aets && aets.length > 0 ? aets : null } } : {}),
    ...(f.pacs !== undefined ? { pacs: { url: f.pacs.replace(/\/$/, ''), query, intervalMs: f.pacsInterval * 1000 } } : {}),
    inferOnArrival: f.inferOnArrival ?? false,
    keepOriginals: f.keepDicom ?? false,
    retentionDays: f.casesRetentionDays ?? null,
    inputSpec,
    decodeWorkers: f.decodeWorkers,
  };
}
