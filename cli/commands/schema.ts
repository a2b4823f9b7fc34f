import { configSchema } from '../../engine/config/schema.js';
import { type IO, printJson } from '../io.js';

/** `backflow schema`: the JSON Schema of the whole config document (for editors' YAML language servers). */
export async function schemaCommand(io: IO): Promise<number> {
  printJson(io, configSchema);
  return 0;
}
