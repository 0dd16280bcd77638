@{
    RootModule           = 'PhotoBulk.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0f4c1e-7d2a-4e8b-9a61-3c2f0d9e8a17'
    Author               = 'PhotoBulk developers'
    Description          = 'Contact photos for Active Directory and Exchange in bulk: converts with the photobulk sidecar (orientation, crop, 96x96 <= 10 KB), backs up before every write, reports what is stored.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FunctionsToExport    = @('Set-PhotoBulk', 'Get-PhotoReport', 'Remove-PhotoBulk', 'Restore-PhotoBulk')
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    FormatsToProcess     = @('PhotoBulk.Format.ps1xml')
    PrivateData          = @{
        PSData = @{
            Tags       = @('ActiveDirectory', 'Exchange', 'thumbnailPhoto', 'Photo')
            LicenseUri = 'https://example.invalid/photobulk/LICENSE'
        }
    }
}
