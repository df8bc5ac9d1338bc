// Preloaded with node -r, as global-agent/bootstrap is meant to be: with
// GLOBAL_AGENT_ENVIRONMENT_VARIABLE_NAMESPACE set empty it reads
// HTTP_PROXY, HTTPS_PROXY and NO_PROXY, and routes the http and https
// modules' requests through the proxy; the app's own code is unchanged.
require("global-agent/bootstrap");
