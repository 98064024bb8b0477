// What the rest of the node uses of api/: other folders import from here, not from its files.
export { apiRoutes } from './api-routes.js'
export { ApiServer } from './api-server.js'
