// The Debian packages tests need, installed when missing (the README's test line runs this first):
// nftables, iproute2 and miniupnpd (a UPnP gateway for a home router) for the NAT lab
// (test/integration/test/nat-lab.spec.ts), and Chromium for the dashboard's browser tests
// (test/integration/test/dashboard.spec.ts). Needs root; without root it
// says what it would install, and the tests that need them say so when they do not run.
import { execFileSync } from 'node:child_process'

const NEEDED = [{ command: 'nft', pkg: 'nftables' }, { command: 'ip', pkg: 'iproute2' }, { command: 'miniupnpd', pkg: 'miniupnpd-nftables' }, { command: 'chromium', pkg: 'chromium' }]

const has = command => { try { execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }); return true } catch { return false } }
const missing = NEEDED.filter(n => !has(n.command))
if (missing.length > 0) {
  const pkgs = missing.map(m => m.pkg)
  if (process.getuid?.() !== 0) {
    process.stderr.write(`system-packages: ${pkgs.join(', ')} missing and not root: the NAT lab's and the dashboard's browser tests will not run (apt-get install ${pkgs.join(' ')})\n`)
  } else {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const install = () => execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: ['ignore', 'ignore', 'inherit'], env })
    try {
      install()
    } catch {
      // the package lists may be empty on a fresh machine
      execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env })
      install()
    }
    process.stderr.write(`system-packages: installed ${pkgs.join(', ')}\n`)
  }
}
