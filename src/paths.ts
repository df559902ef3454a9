// Where canon's own files live, found from this module so that `npx canon` works from any
// directory (src/ and dist/src/ both sit one or two levels under the package root).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'migrations'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('canon: cannot find the package root (migrations/ missing)');
}

export const packageRoot = findRoot();
export const migrationsDir = path.join(packageRoot, 'migrations');
export const version: string = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version;
