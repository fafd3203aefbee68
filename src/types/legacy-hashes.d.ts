// Types for the two htpasswd hash libraries that ship none Pier's compiler finds (passwords.ts).

declare module 'apache-md5' {
  /**
   * Apache's MD5 crypt (`$apr1$<salt>$<hash>`, htpasswd -m).
   * @param password the password
   * @param salt a stored `$apr1$…` hash (its salt is reused) or a bare salt; none: a random one
   * @returns the `$apr1$` hash
   */
  function aprMd5(password: string, salt?: string): string
  export default aprMd5
}

declare module 'unix-crypt-td-js' {
  /**
   * Traditional DES crypt(3) (htpasswd -d): 13 characters, the first two the salt.
   * @param password the password (only its first 8 characters count, as in crypt(3))
   * @param salt a stored hash (its first two characters are the salt) or a 2-character salt
   * @returns the 13-character hash
   */
  function unixCryptTD(password: string, salt: string): string
  export default unixCryptTD
}
