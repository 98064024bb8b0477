// What each command does, in a line: the overview (`shoal --help`) shows these without loading any
// command's code (`shoal node start` would load the whole node).
export const SUMMARIES: Record<string, string> = {
  'node start': 'run a Shoal node in the foreground',
  'node status': 'show what the running node is doing',
  'node pause': 'stop taking new pieces from peers (also across a restart); pieces running finish',
  'node resume': 'take pieces from peers again, as the node\'s preferences allow',
  'node dashboard': 'print the address of the running node\'s dashboard (a live page on its API port)',
  'peers': 'list the peers the running node sees, with their capacity',
  'id': 'print the node\'s peer id (and addresses, if it is running)',
  'run': 'run a batch through a model, split across the mesh',
  infer: 'answer one request now: a small batch, whole, to the peer expected to answer first',
  'model add': 'check an ONNX model and add it to the running node\'s store; prints its CID',
  'model ls': 'list the models in the running node\'s store',
  'model get': 'fetch a model into the running node\'s store from the peers that hold it',
  'model split': 'cut an ONNX model into stages for a pipeline across the mesh; prints the pipeline CID',
  'model rm': 'remove a model from the running node\'s store',
  'model pin': 'keep a model: never evicted when the storage quota is full',
  'model unpin': 'let a model be evicted again when the storage quota is full',
  'key generate': 'make a pre-shared key for a private mesh (shoal node start --swarm-key)',
  'sim': 'run a whole mesh on this machine from a scenario file, and report what happened'
}
