import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { PortcullisError } from '../lib/errors.js';

/**
 * Reads a secret without it ever being an argument: prompted without echo on a terminal
 * (twice when `confirm`), else the first line of stdin.
 */
export async function readSecret(prompt: string, confirm = false): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (!line) throw new PortcullisError('ERR_BAD_REQUEST', 'expected the secret on stdin (one line)');
    return line;
  }
  const first = await promptHidden(prompt);
  if (confirm && (await promptHidden('Repeat: ')) !== first) throw new PortcullisError('ERR_BAD_REQUEST', 'the two entries differ');
  return first;
}

function promptHidden(prompt: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(prompt, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}
