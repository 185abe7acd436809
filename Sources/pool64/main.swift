import Pool64Core

await Pool64Command.main()
