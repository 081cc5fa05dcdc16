export { loadInventory, parseInventoryText, resolveInventoryPath } from './load.js';
export { selectGateways } from './limit.js';
export { InventoryErrors } from './errors.js';
export { parseYamlWithSchema } from './yaml-source.js';
export {
  isGatewayName,
  isHostName,
  isIPv4,
  isInterfaceName,
  isLinkName,
  isLocalFilePath,
  isProxyJump,
  isSshHost,
  isSshUser,
  isUnicastIPv4,
} from './validators.js';
