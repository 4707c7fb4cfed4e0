// Which Nix store ext uses (the system's or a private chroot store) and collecting the private one.
export {
  chooseStore,
  readStoreSetting,
  describeStore,
  formatStore,
  systemStoreUsable,
  defaultPrivateRoot,
  privateStoreEnv,
  realProbe,
  STORE_ENV,
  type ChosenStore,
  type StoreSetting,
  type StoreMode,
  type StoreProbe,
  type StoreDescription,
  type SettingSource,
} from "./choose.js";
export { collectPrivateStore, syncRoots, gcRootsDir, parseGcSummary, type StoreGcResult } from "./gc.js";
