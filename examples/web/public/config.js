// Runtime settings, read before the app starts (a deployment, or a test, may serve its own).
// Empty: the app uses VITE_TESSERA_URL / VITE_TESSERA_TRANSPORT from the build, or its defaults.
window.TESSERA_CONFIG = window.TESSERA_CONFIG || {};
