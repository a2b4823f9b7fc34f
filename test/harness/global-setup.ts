// Placeholder until the harness lands: provides no servers.
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject) {
  project.provide('servers', {});
}
