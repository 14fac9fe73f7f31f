// KUBECONFIG with kubectl's meaning, the one meaning for every command and for
// kube/api.ts: a `path.delimiter`-separated list of files, merged (kube/api.ts
// merges them; the first file to set a name or the current context wins). As
// kubectl does, files of the list that do not exist are skipped; a list naming no
// existing file, or a file that exists but cannot be read, is a problem. Empty
// means unset (in-cluster configuration, else ~/.kube/config).
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { Problem, type Setting } from './settings.ts';

/** The files of a KUBECONFIG value that exist and can be read ([] for an empty value). */
export function kubeconfigFiles(value: string): string[] | Problem {
  const listed = [...new Set(value.split(path.delimiter).filter((file) => file !== ''))];
  const files: string[] = [];
  const missing: string[] = [];
  for (const file of listed) {
    try {
      if (statSync(file).isDirectory()) return new Problem(`${file} is a directory, not a kubeconfig file`);
      accessSync(file, constants.R_OK);
      files.push(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      if (code !== 'ENOENT') return new Problem(`cannot read ${file}: ${code}`);
      missing.push(file);
    }
  }
  if (files.length === 0 && missing.length === 1) return new Problem(`cannot read ${missing[0]}: ENOENT`);
  if (files.length === 0 && missing.length > 1) return new Problem(`none of ${missing.join(', ')} exists`);
  return files;
}

/** KUBECONFIG / --kubeconfig, declared once for every command that reaches the API. */
export const kubeconfigSetting = {
  env: 'KUBECONFIG',
  flag: 'kubeconfig',
  help: `kubeconfig files, '${path.delimiter}'-separated and merged as kubectl does`,
  defaultHelp: 'in-cluster config, else ~/.kube/config',
  parse: (raw: string): string | undefined | Problem => {
    const files = kubeconfigFiles(raw);
    if (files instanceof Problem) return files;
    return files.length > 0 ? raw : undefined;
  },
} satisfies Setting<string | undefined>;
