/**
 * The layers of src/, lowest first: a folder may import only folders of layers below its own
 * (never one beside it or above it), and no two files may import each other, directly or round
 * a circle. README.md ("How it works") shows the same picture. `npm test` runs this.
 */
const LAYERS = [
  ['errors.ts', 'model'],
  ['remote'],
  ['inventory', 'ssh'],
  ['routing', 'firewall'],
  ['facts'],
  ['render', 'diff', 'checks'],
  ['apply'],
  ['runner'],
  ['report'],
  ['status', 'lab'],
  ['cli'],
];

const pathOf = (name) => (name.endsWith('.ts') ? `^src/${name.replace('.', '\\.')}$` : `^src/${name}/`);

const layerRules = LAYERS.flatMap((layer, i) =>
  layer.flatMap((name) => {
    const notBelow = LAYERS.slice(i).flat().filter((other) => other !== name);
    if (notBelow.length === 0) return [];
    return {
      name: `layer-${name}`,
      comment: `src/${name} (layer ${i + 1}) may import only layers 1-${i}: ${LAYERS.slice(0, i).flat().join(', ') || 'nothing'}`,
      severity: 'error',
      from: { path: pathOf(name) },
      to: { path: `(${notBelow.map(pathOf).join('|')})` },
    };
  }),
);

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      comment: 'no two files import each other, directly or through others',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'backends-apart',
      comment: 'a firewall backend is a folder of its own: it never imports another backend',
      severity: 'error',
      from: { path: '^src/firewall/([^/]+)/' },
      to: { path: '^src/firewall/[^/]+/', pathNot: '^src/firewall/$1/' },
    },
    {
      name: 'backends-below-registry',
      comment: 'backends import the interface, not the registry that lists them',
      severity: 'error',
      from: { path: '^src/firewall/[^/]+/' },
      to: { path: '^src/firewall/(index|choice)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|test)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};

// Read by the test of the rules themselves (test/architecture).
Object.defineProperty(module.exports, 'LAYERS', { value: LAYERS, enumerable: false });
