/**
 * `fedmed edge import FOLDER` and `fedmed edge cases list|show|label|stats|delete`: the case store
 * on the edge machine, for hospital IT and for clinicians working at the edge. These open
 * STATE_DIR/cases directly (a running edge may have it open too: SQLite serialises the writers);
 * label changes and deletions made here reach the audit log through the edge (edgeNode.ts).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../shared/errors.js';
import { defaultInputSpec, parseInputSpec } from '../shared/model/inputSpec.js';
import { intOption } from './parseNumber.js';

async function openCases(stateDir: string) {
  const { CaseStore } = await import('../edge-client/cases/caseStore.js');
  return CaseStore.open(stateDir);
}

export function edgeCasesCommands(edge: Command): void {
  edge
    .command('import')
    .description('import the DICOM files in a folder (recursively) into the case store, de-identified and preprocessed for the serving model')
    .argument('<folder>', 'folder of DICOM files (files without the DICM marker are skipped)')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .option('--dicom-input-spec <file>', 'JSON input spec to preprocess for when no model serves yet')
    .option('--keep-dicom', "keep each instance's original DICOM in STATE_DIR/cases/originals")
    .option('--json', 'print JSON')
    .action(async (folder: string, flags: { stateDir: string; dicomInputSpec?: string; keepDicom?: boolean; json?: boolean }) => {
      const { VersionStore } = await import('../edge-client/ota/versionStore.js');
      const { DecodePool } = await import('../edge-client/dicom/decodePool.js');
      const { DicomIngest } = await import('../edge-client/dicom/dicomIngest.js');
      const { importDicomFolder } = await import('../edge-client/dicom/dicomFolderImport.js');
      const { modelInput } = await import('../edge-client/dicom/modelInput.js');
      const versions = new VersionStore(flags.stateDir);
      const serving = versions.active ? versions.load(versions.active).spec : null;
      const given = flags.dicomInputSpec ? parseInputSpec(JSON.parse(readFileSync(flags.dicomInputSpec, 'utf8')), flags.dicomInputSpec) : defaultInputSpec([28, 28, 1]);
      const input = modelInput(serving ?? { inputShape: [...given.size, given.channels], input: given });
      const cases = await openCases(flags.stateDir);
      const pool = new DecodePool({});
      let fresh = 0;
      let duplicates = 0;
      try {
        const ingest = new DicomIngest({ cases, pool, modelInput: () => input, keepOriginals: flags.keepDicom ?? false, log: () => {} });
        ingest.onCase = (c) => void (c.duplicate ? duplicates++ : fresh++);
        const log = { info: () => {}, warn: (_o: object, msg: string) => process.stderr.write(`fedmed: ${msg}\n`) };
        const r = await importDicomFolder(folder, (p10, source) => ingest.ingest(p10, source).then(() => undefined), log);
        const out = { ...r, newCases: fresh, duplicates, inputSpecHash: input.hash };
        if (flags.json) return void process.stdout.write(`${JSON.stringify(out)}\n`);
        console.log(`imported ${r.imported} instances from ${folder}: ${fresh} new cases, ${duplicates} already known`);
        for (const f of r.refused) console.log(`  refused ${f.file}: ${f.reason}`);
      } finally {
        await pool.close();
        cases.close();
      }
    });

  const cases = edge.command('cases').description("the site's case store: de-identified DICOM cases and clinicians' labels");
  cases
    .command('list')
    .description('cases, newest first')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .option('--unlabelled', 'only cases without a label')
    .option('--labelled', 'only labelled cases')
    .option('--limit <n>', 'at most this many', intOption('--limit', 1), 50)
    .option('--json', 'print JSON')
    .action(async (f: { stateDir: string; unlabelled?: boolean; labelled?: boolean; limit: number; json?: boolean }) => {
      if (f.unlabelled && f.labelled) throw new UsageError('give --labelled or --unlabelled, not both');
      const store = await openCases(f.stateDir);
      try {
        const rows = store.list({ labelled: f.labelled ? true : f.unlabelled ? false : undefined, limit: f.limit });
        if (f.json) return void process.stdout.write(`${JSON.stringify(rows)}\n`);
        for (const c of rows) console.log(`${c.id}  ${c.receivedAt}  ${(c.metadata.modality ?? '?').padEnd(3)} ${c.split.padEnd(5)} label ${c.label ?? '-'}${c.pixelHash ? `  pixels ${c.pixelHash.slice(0, 16)}` : ''}${c.inference ? `  predicted ${c.inference.predictedClass} (${c.inference.version.slice(0, 12)})` : ''}`);
      } finally {
        store.close();
      }
    });
  cases
    .command('label')
    .description("set a case's label (a class index), or clear it with 'none'; every change is kept and audited")
    .argument('<case>', 'case id (its pseudonym)')
    .argument('<label>', "class index, or 'none'")
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .requiredOption('--by <name>', 'who labels it')
    .action(async (id: string, label: string, f: { stateDir: string; by: string }) => {
      const value = label === 'none' ? null : Number(label);
      if (value !== null && !Number.isInteger(value)) throw new UsageError(`label must be a class index or 'none', got "${label}"`);
      const store = await openCases(f.stateDir);
      try {
        const c = store.label(id, value, f.by, { via: 'cli' });
        console.log(`case ${id}: label ${c.previous ?? 'none'} → ${c.label ?? 'none'} (by ${c.by})`);
      } finally {
        store.close();
      }
    });
  cases
    .command('stats')
    .description('how many cases, labelled, by split, modality and scanner')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .option('--json', 'print JSON')
    .action(async (f: { stateDir: string; json?: boolean }) => {
      const store = await openCases(f.stateDir);
      try {
        const s = store.stats();
        if (f.json) return void process.stdout.write(`${JSON.stringify(s)}\n`);
        console.log(`${s.cases} cases, ${s.labelled} labelled (train ${s.bySplit.train.labelled}, validation ${s.bySplit.val.labelled}, test ${s.bySplit.test.labelled})`);
        console.log(`labels: ${Object.entries(s.byLabel).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none'}`);
        console.log(`modalities: ${Object.entries(s.byModality).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none'}`);
        console.log(`scanners: ${Object.entries(s.byScanner).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none'}`);
        if (s.oldest) console.log(`received ${s.oldest} … ${s.newest}`);
      } finally {
        store.close();
      }
    });
  cases
    .command('delete')
    .description('delete the cases received before a date (their labels, answers and kept originals too)')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .requiredOption('--before <date>', 'an ISO date or time, e.g. 2026-06-01')
    .action(async (f: { stateDir: string; before: string }) => {
      const date = new Date(f.before);
      if (Number.isNaN(date.getTime())) throw new UsageError(`--before must be a date, e.g. 2026-06-01, got "${f.before}"`);
      const store = await openCases(f.stateDir);
      try {
        console.log(`deleted ${store.deleteBefore(date, 'fedmed edge cases delete')} cases received before ${date.toISOString()}`);
      } finally {
        store.close();
      }
    });
}
