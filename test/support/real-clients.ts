import { execFileSync } from 'node:child_process';

/**
 * Why a test that drives the real `nc` cannot run here, or false: the fresh-machine contract lets such a test
 * skip, saying so, where nc is absent; `.ci/run` installs it.
 */
export const ncSkip: string | false = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v nc'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'nc is not installed (apt-get install netcat-openbsd); .ci/run installs it';
  }
})();
