// Bundles each notebook widget (widgets/*.ts, with uPlot) into one ES module under
// src/labtrack/widgets/static/, where anywidget loads it from; also writes the shared CSS.
import { build } from "esbuild";
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const out = join(root, "..", "src", "labtrack", "widgets", "static");
mkdirSync(out, { recursive: true });

const entryPoints = readdirSync(join(root, "widgets"))
  .filter((name) => name.endsWith(".ts"))
  .map((name) => join(root, "widgets", name));

await build({
  entryPoints,
  outdir: out,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: false,
  legalComments: "eof",
  logLevel: "info",
});

// One stylesheet for every widget: uPlot's, then each widget's own (lib/*.css, sorted).
const uplotCss = readFileSync(join(root, "node_modules", "uplot", "dist", "uPlot.min.css"), "utf8");
const ownCss = readdirSync(join(root, "widgets", "lib"))
  .filter((name) => name.endsWith(".css"))
  .sort()
  .map((name) => readFileSync(join(root, "widgets", "lib", name), "utf8"));
writeFileSync(join(out, "widgets.css"), [uplotCss, ...ownCss].join("\n"));
console.log(`widgets: ${entryPoints.length} module(s) and widgets.css in ${out}`);
