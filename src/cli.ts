#!/usr/bin/env node
// The `hearth` executable.
import { main } from './cli/main.js';

process.exit(await main(process.argv));
