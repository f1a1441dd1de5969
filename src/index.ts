/** imgbuild as a library: the same jobs the CLI runs, and the parts they are made of. */
export { addToImage, type AddRequest, type AddResult } from './add.js';
export { inspectImage, type InspectResult, type ImageSummary } from './inspect.js';
export { readFileFromImage, type ReadFileResult } from './verify.js';
export { parseReference, formatReference, repositoryName, type ImageReference } from './reference.js';
export { RegistryClient, type RegistryClientOptions, type FetchedManifest } from './registry/client.js';
export { createCredentialStore, type Credential, type CredentialStore } from './registry/credentials.js';
export { buildLayer, parseAddSpec, parseChmod, parseChown, type AddSpec, type BuiltLayer, type LayerOptions } from './image/layer.js';
export { appendLayer, encodeImage, editRunConfig, type ConfigEdits } from './image/mutate.js';
export { pushBlobs, type BlobToPush, type BlobContent, type PushEvents } from './image/push.js';
export { fetchRemote, type RemoteImage, type RemoteIndex } from './image/remote.js';
export { readFileFromLayers, type FileLookup, type FileContentSink, type ReadFileOptions } from './image/read-file.js';
export { ContentSpool, expectedBytes, expectedFile, type ExpectedContent, type SpooledContent } from './content-spool.js';
export { parsePlatform, type PlatformSpec } from './image/platform.js';
export { MediaType } from './image/mediatypes.js';
export * from './errors.js';
export { createLogger, type Logger } from './logger.js';
export { buildWithKaniko, renderKanikoBuild, KanikoBuildError, BuildInterrupted, type KanikoBuildRequest, type KanikoBuildResult } from './engines/kaniko.js';
export { resolveCluster, type ClusterOptions, type ResolvedCluster } from './kubernetes/config.js';
